python -m benchmarks.apps.hooks               # edit-to-peer latency with slow and failing hooks
python -m benchmarks.apps.feed                # many change-feed subscribers on one room
python -m benchmarks.retention_growth         # bytes on disk against updates, with a window
python -m benchmarks.ops_costs archive        # CPU per edit and p99 with the archive on and off
python -m benchmarks.ops_costs backup         # a backup of a 1 GB store
python -m benchmarks.ops_costs recovery --trials 3
python -m benchmarks.restore_scale --maps 20000  # one restore on 20,000 maps; fails past 2 s of CPU
python -m benchmarks.rules_cpu --edits 3000 --rounds 5  # what the chat rules add per edit, in-process
python -m benchmarks.commit_linger --refs main,HEAD --rounds 3  # the commit linger alone: edit-to-durable p50/p99, updates per transaction
