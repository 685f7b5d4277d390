"""Adapters: the only modules that talk to the outside world; only the composition root names them."""  # noqa: E501
