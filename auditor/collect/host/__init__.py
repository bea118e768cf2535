"""A host's files as the machine runs them: compose projects (as `docker compose config` reads them),
Dockerfiles, nginx configs (files or `nginx -T`), `docker inspect` output, and the commands that fetch
them."""
