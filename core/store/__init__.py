"""What is kept on disk: run records and run folders, repair, the training lock, the session store, live stamps."""
