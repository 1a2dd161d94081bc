"""The notify API: its domain (``service``), its settings (``settings``) and its HTTP side (``http``)."""
