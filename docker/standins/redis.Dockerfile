# Test stand-in for the official `redis` image, for `make compose-test` where no registry is
# reachable: Debian's redis-server on the locally made base, with the official image's conventions
# (protected mode off, /data as working directory and volume, a non-root user). Never for production.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG REDIS_VERSION
RUN echo "deb http://deb.debian.org/debian-security bookworm-security main" \
      > /etc/apt/sources.list.d/security.list \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "redis-server=5:${REDIS_VERSION}-*" \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
VOLUME /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
