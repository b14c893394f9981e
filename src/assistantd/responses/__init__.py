"""The Responses API: responses run on the run engine, over the same store as threads."""
