"""The run folder (what every command writes) and inputs that are a file *or* a run folder."""
