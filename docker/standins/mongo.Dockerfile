# Test stand-in for the official `mongo` image, for `make compose-test` where no registry is
# reachable: FerretDB (the MongoDB wire protocol on SQLite) on the locally made base, its data in
# /data/db like mongod's, and a `mongosh` that runs the one command the compose healthcheck uses.
# Never for production.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG PYMONGO_VERSION
RUN python3 -m venv /opt/mongosh \
 && /opt/mongosh/bin/pip install --no-cache-dir --disable-pip-version-check "pymongo==${PYMONGO_VERSION}" \
 && useradd --system --uid 999 --no-create-home mongodb \
 && mkdir -p /data/db && chown mongodb:mongodb /data/db
COPY ferretdb /usr/local/bin/ferretdb
COPY mongosh.py /usr/local/bin/mongosh
USER mongodb
VOLUME /data/db
EXPOSE 27017
ENTRYPOINT ["ferretdb", "--handler=sqlite", "--sqlite-url=file:/data/db/", "--state-dir=/data/db", \
            "--listen-addr=:27017", "--telemetry=disable"]
