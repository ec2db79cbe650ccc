"""The bottom layer: representations, permutation actions, groups and the equivariance
measurement. It imports nothing else of symlight's.
"""
