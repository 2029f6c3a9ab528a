"""The engine: the workload spec, the coordinator that runs one workload on one executor, the ledger,
metrics, statistics, local services and machine metadata; the typed result documents (results.py,
preset_results.py, their codec and JSON Schema) and how output files are written (outputs.py)."""
