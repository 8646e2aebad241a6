
google/type/latlng.protogoogle.type"-
LatLng
latitude (
	longitude (B`
com.google.typeBLatLngProtoPZ8google.golang.org/genproto/googleapis/type/latlng;latlng¢GTPbproto3