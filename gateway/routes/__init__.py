"""HTTP routes, one module per resource; each adds its operations to the route table."""
