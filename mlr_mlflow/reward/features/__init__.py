"""What the reward model reads of a hypothesis: its code's structure (`structural`, from the AST),
its text (`embed`, a code encoder), and its behaviour measured in the sandbox (`grid`, on a probe
grid; `probes`, the signals a network sees). Import the submodules directly.
"""
