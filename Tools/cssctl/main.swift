print("cssctl: not yet implemented")
