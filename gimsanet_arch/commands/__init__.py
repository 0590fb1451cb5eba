"""The plugin's commands: ``basicsr train|test`` (:mod:`.basicsr_cli`, with the up-front option
checks of :mod:`.option_checks`) and the model comparison (:mod:`.compare`)."""
