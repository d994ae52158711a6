"""Pet Lab's engine, in floors: each package imports only those below it, and never streamlit.

Bottom to top: this root (i18n, settings, storage, quotas, auth, codec), nets, data, store, train,
inside, predict, teach, prep. tests/test_layering.py holds the order.
"""
