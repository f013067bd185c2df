"""Workers: claim due sources, poll them, store what they return; all state is in the db."""
