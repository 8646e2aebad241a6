
google/type/quaternion.protogoogle.type"8

Quaternion	
x (	
y (	
z (	
w (Bl
com.google.typeBQuaternionProtoPZ@google.golang.org/genproto/googleapis/type/quaternion;quaternion¢GTPbproto3