"""The serving benchmark (`dop bench serve`): a LoRA-serving decoder, its LoRA backends, the timed decode step."""
