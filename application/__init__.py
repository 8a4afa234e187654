"""Use cases of the Task API and the ports they need. Imports only ``domain``."""
