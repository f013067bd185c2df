"""Source kinds: each module fetches one kind of source and returns posts; none touches the database."""
