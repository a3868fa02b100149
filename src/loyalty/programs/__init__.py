"""Loyalty programs: the program file, its versions, and the earn calculation."""
