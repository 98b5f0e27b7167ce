"""Suite files shipped with facebench (installed as facebench.suites)."""
