"""The paper's experiments (§4.1): many runs trained as one compiled program.

engine.py          the multi-run training program (data, update step, screens)
runner.py          drives the engine: periods, checkpoints, results per run
presets.py         presets and settings checks shared by the config classes
sharding.py        the run axis over devices (and processes)
sweep.py           Fig. 7: success rate against sequence length
generalization.py  §4.1.1: train on lengths [50, 200), test up to 5000
"""
