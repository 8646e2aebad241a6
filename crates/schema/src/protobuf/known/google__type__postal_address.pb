
 google/type/postal_address.protogoogle.type"ý
PostalAddress
revision (
region_code (	
language_code (	
postal_code (	
sorting_code (	
administrative_area (	
locality (	
sublocality (	
address_lines	 (	

recipients
 (	
organization (	Bu
com.google.typeBPostalAddressProtoPZFgoogle.golang.org/genproto/googleapis/type/postaladdress;postaladdress¢GTPbproto3