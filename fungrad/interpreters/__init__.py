"""One interpreter per transformation: staging/partial evaluation, JVP + transpose, batching."""
