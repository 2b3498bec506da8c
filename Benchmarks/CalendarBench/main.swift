print("calendar-bench: not yet implemented")
