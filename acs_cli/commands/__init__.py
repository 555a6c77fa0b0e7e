"""One module per command; each wires settings, request, engine or client, and sink."""
