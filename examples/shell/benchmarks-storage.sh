python -m benchmarks.engine_storage
python -m benchmarks.scaleout --rooms 50 --seconds 8 --repeats 3
