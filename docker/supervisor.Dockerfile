# arbor-supervisor, FROM scratch. Built by docker/build.sh (see
# broker.Dockerfile). arbor-forkserver (the fork-server, which also runs the
# builtin behaviours) sits next to arbor-supervisor; arbor-example-worker is
# included for `run: exec` nodes, and arborctl for the healthcheck.
# Set the broker with ARBOR_BROKER or --broker, the name with --name or
# ARBOR_SUPERVISOR_NAME (default: the container's host name).
FROM scratch
ADD rootfs.tar /
ENV PATH=/ \
    ARBOR_LOG_LEVEL=info
USER 10001:10001
STOPSIGNAL SIGTERM
ENTRYPOINT ["/arbor-supervisor"]
