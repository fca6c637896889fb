"""polydiff.training"""
