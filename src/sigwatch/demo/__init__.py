"""The offline demo: feeds written by this project, served in process, growing every few seconds."""
