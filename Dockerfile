# fnctl, for docker-compose.kafka.yml: the restarter daemon and the go
# toolchain `fnctl deploy` builds functions with.
FROM golang:1.26-bookworm
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -o /usr/local/bin/fnctl ./cmd/fnctl
ENV FN_STATE=/var/lib/microfn
ENTRYPOINT ["fnctl"]
