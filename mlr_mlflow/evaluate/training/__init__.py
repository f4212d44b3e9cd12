"""How a hypothesis is trained: the sandboxed job (`job`), the batched MLP (`model`) and the other
model families (`families`), how hypothesis code is called (`calls`), the epoch loop (`epochs`),
Adam on flat buffers (`optim`), and the caller's side that hands the job to the sandbox
(`dispatch`). Only `job` and what it imports load torch and lightning, in the sandbox.
"""
