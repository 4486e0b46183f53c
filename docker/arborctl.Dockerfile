# arborctl, FROM scratch. Built by docker/build.sh (see broker.Dockerfile).
#   docker run --rm -i --network NET -e ARBOR_BROKER=tcp://broker:5555 \
#       arbor/arborctl:dev spawn --wait --json - < tree.json
FROM scratch
ADD rootfs.tar /
ENV PATH=/
USER 10001:10001
ENTRYPOINT ["/arborctl"]
CMD ["--help"]
