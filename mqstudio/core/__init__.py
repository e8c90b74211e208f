"""Qt-free, stdlib-only designer model: topology, validation, commands, file formats and plans."""
