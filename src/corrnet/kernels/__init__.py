"""Pure array algorithms on NumPy arrays: no Tensor, no autograd.

windows.py is the one windowing primitive; conv.py and pool.py build on it; reference.py
holds plain loops for the tests. device_conv.py and device_pool.py are the same passes
written against an array namespace (namespace.py: NumPy's, or CuPy's on a GPU); the planner
(plan.py) sends arrays that live on a CUDA device to them.
"""
