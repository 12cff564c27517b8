"""`make chaos` / `make soak`: the whole stack on its own PostgreSQL and Redis, faults injected
while notifications arrive, then the checks (docs/reliability.md tests 4, 11, 33-34, 55).

- `services`: the throw-away PostgreSQL cluster and Redis server (start, stop, kill).
- `stack`: gunicorn, two Celery workers, beat and the sandbox over real mTLS, supervised.
- `faults`: the fault plan for a size and the injectors.
- `checks`: golden set, lost / duplicated / stuck, token scan, process samples.
- `run`: the driver and the report (`python -m bench.chaos.run --size ci|full`).
"""
