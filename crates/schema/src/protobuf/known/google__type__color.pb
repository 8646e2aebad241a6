
google/type/color.protogoogle.typegoogle/protobuf/wrappers.proto"]
Color
red (
green (
blue (*
alpha (2.google.protobuf.FloatValueB]
com.google.typeB
ColorProtoPZ6google.golang.org/genproto/googleapis/type/color;color¢GTPbproto3