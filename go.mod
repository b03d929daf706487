module github.com/zenoload/zenoload

go 1.26

require (
	github.com/joho/godotenv v1.5.1
	github.com/stretchr/testify v1.12.1
	github.com/vmihailenco/msgpack/v5 v5.4.1
	github.com/zeromq/goczmq v0.0.0-20190906225145-a7546843a315
)

require (
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
