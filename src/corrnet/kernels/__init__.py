"""Pure array algorithms on NumPy arrays: no Tensor, no autograd.

windows.py is the one windowing primitive; conv.py and pool.py build on it; reference.py
holds plain loops for the tests.
"""
