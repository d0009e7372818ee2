# Multi-stage build: a static binary on a distroless base (CA certificates,
# tzdata for CRON_TZ, non-root user).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/s3connector ./cmd/s3connector

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/s3connector /usr/local/bin/s3connector
USER nonroot:nonroot
EXPOSE 9464
ENTRYPOINT ["s3connector"]
# The daemon. Set `listen: 0.0.0.0:9464` in the mounted configuration so the
# metrics and probe endpoints are reachable from outside the container.
CMD ["run", "--config", "/etc/s3connector/config.yaml"]
