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
# The daemon (`run`) arrives with the scheduled-ingestion work; until then
# the image validates the mounted configuration.
CMD ["validate", "--config", "/etc/s3connector/config.yaml"]
