"""The engine: the workload spec, the coordinator that runs one workload on one executor, the ledger,
metrics, statistics, local services and machine metadata."""
