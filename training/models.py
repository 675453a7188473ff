"""Model versions, their artifacts, and the runs that trained them."""
