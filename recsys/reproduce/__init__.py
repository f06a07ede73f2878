"""``recsys reproduce``: rebuild an export from what it carries (:mod:`.check`, :mod:`.rebuild`,
:mod:`.verdict`). An application: it runs the trainer and the local cluster (:mod:`recsys.launch`)."""
