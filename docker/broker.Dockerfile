# arbor-broker, FROM scratch. Built by docker/build.sh, whose staging dir is
# the context: rootfs.tar holds the binaries, their ldd-listed libraries, the
# ELF loader and a minimal /etc. arborctl is included for the healthcheck
# (defined in docker-compose.yml in exec form: the image has no shell).
FROM scratch
ADD rootfs.tar /
ENV PATH=/ \
    ARBOR_LOG_LEVEL=info
USER 10001:10001
EXPOSE 5555
STOPSIGNAL SIGTERM
ENTRYPOINT ["/arbor-broker"]
# A tcp endpoint needs CURVE (--curve-secret, --curve-allow) or an explicit
# --plain (docs/SECURITY.md); the compose stack passes its own command.
CMD ["--bind", "tcp://*:5555", "--plain"]
