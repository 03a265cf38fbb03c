python -m benchmarks                          # workloads A-F, all servers, 3 repeats
python -m benchmarks --workload T             # typists at typing pace (+ one busy room)
python -m benchmarks --workload BIG           # a 17 MB room, cold after a restart
python -m benchmarks --workload BIG --big-mb 100
python -m benchmarks --workload T --profile T # also py-spy ours at 100 rooms of typists
python -m benchmarks --workload T --servers ours-hocuspocus,hocuspocus  # typists, Hocuspocus dialect
python -m benchmarks.multiplex --docs 500     # 500 documents over one socket vs 500 sockets
python -m benchmarks.readme                   # only rewrite the tables of docs/benchmarks/index.md
python -m benchmarks.cpu_ab --refs main,HEAD --rooms 100 --rounds 6 --json ab.jsonl  # A/B our CPU per edit
python -m benchmarks.cpu_ab --summarize ab.jsonl  # its summary again: medians, CPU at a common p50
