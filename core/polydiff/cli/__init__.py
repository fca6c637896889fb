"""polydiff.cli"""
