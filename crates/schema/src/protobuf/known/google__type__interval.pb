
google/type/interval.protogoogle.typegoogle/protobuf/timestamp.proto"h
Interval.

start_time (2.google.protobuf.Timestamp,
end_time (2.google.protobuf.TimestampBf
com.google.typeBIntervalProtoPZ<google.golang.org/genproto/googleapis/type/interval;interval¢GTPbproto3