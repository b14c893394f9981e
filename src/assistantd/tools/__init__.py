"""Assistant tools: their wire definitions, resources, and (in the run engine) execution."""
