"""Everything an experiment writes to disk: atomic files, checkpoints, provenance, figures,
and the output-folder protocol (settings recorded, resume, refusal)."""
