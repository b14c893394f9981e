"""Operations: structured logs with request and run ids, Prometheus metrics, the worker's port."""
