"""Source kinds: each fetches one kind of source and returns posts; none touches the database."""
