"""Alembic migrations of the registry schema, run by ``control_plane.store.migrate`` (``conduit control-plane
migrate``); ``env.py`` takes its connection from there, so there is no alembic.ini.

A new revision goes in ``versions/`` as ``NNNN_<what>.py`` with ``down_revision`` set to the previous one, written by
hand or drafted with ``alembic.command.revision(alembic_config(connection), message, autogenerate=True,
rev_id="NNNN")`` (``alembic_config`` is in ``control_plane.store._migrate``) against a database at the previous head,
then reviewed. ``tests/control_plane/store/test_migrations.py`` fails until the migrations and
``control_plane/store/_schema.py`` agree.
"""
